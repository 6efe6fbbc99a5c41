package sim

import (
	"maps"
	"slices"
)

// XML shapes of the EC2 answers, named as aws-sdk-go-v2's ec2query deserializers read them (lists are
// <xSet><item>...</item></xSet>).

type xTag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

func tagList(m map[string]string) []xTag {
	var out []xTag
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, xTag{k, m[k]})
	}
	return out
}

type xGroupIdentifier struct {
	GroupID   string `xml:"groupId"`
	GroupName string `xml:"groupName"`
}

type xInstanceState struct {
	Code int    `xml:"code"`
	Name string `xml:"name"`
}

var stateCodes = map[string]int{"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48,
	"stopping": 64, "stopped": 80}

type xPlacement struct {
	AvailabilityZone string `xml:"availabilityZone"`
	Tenancy          string `xml:"tenancy"`
}

type xIamInstanceProfile struct {
	Arn string `xml:"arn"`
	ID  string `xml:"id"`
}

type xEbsInstanceBlockDevice struct {
	VolumeID            string `xml:"volumeId"`
	Status              string `xml:"status"`
	AttachTime          string `xml:"attachTime"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
}

type xInstanceBlockDeviceMapping struct {
	DeviceName string                  `xml:"deviceName"`
	Ebs        xEbsInstanceBlockDevice `xml:"ebs"`
}

type xInstanceNetworkInterfaceAttachment struct {
	AttachmentID        string `xml:"attachmentId"`
	DeviceIndex         int32  `xml:"deviceIndex"`
	NetworkCardIndex    int32  `xml:"networkCardIndex"`
	Status              string `xml:"status"`
	AttachTime          string `xml:"attachTime"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
}

type xInstanceNetworkInterface struct {
	NetworkInterfaceID string                              `xml:"networkInterfaceId"`
	SubnetID           string                              `xml:"subnetId"`
	VpcID              string                              `xml:"vpcId"`
	Description        string                              `xml:"description"`
	OwnerID            string                              `xml:"ownerId"`
	Status             string                              `xml:"status"`
	MacAddress         string                              `xml:"macAddress"`
	PrivateIPAddress   string                              `xml:"privateIpAddress"`
	SourceDestCheck    bool                                `xml:"sourceDestCheck"`
	InterfaceType      string                              `xml:"interfaceType"`
	Groups             []xGroupIdentifier                  `xml:"groupSet>item"`
	Attachment         xInstanceNetworkInterfaceAttachment `xml:"attachment"`
}

type xStateReason struct {
	Code    string `xml:"code"`
	Message string `xml:"message"`
}

type xInstance struct {
	InstanceID     string         `xml:"instanceId"`
	ImageID        string         `xml:"imageId"`
	State          xInstanceState `xml:"instanceState"`
	PrivateDNSName string         `xml:"privateDnsName"`
	InstanceType   string         `xml:"instanceType"`
	// InstanceLifecycle: "spot" or "scheduled", absent for On-Demand
	// (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_Instance.html).
	InstanceLifecycle   string                        `xml:"instanceLifecycle,omitempty"`
	LaunchTime          string                        `xml:"launchTime"`
	Placement           xPlacement                    `xml:"placement"`
	SubnetID            string                        `xml:"subnetId,omitempty"`
	VpcID               string                        `xml:"vpcId,omitempty"`
	PrivateIPAddress    string                        `xml:"privateIpAddress,omitempty"`
	Architecture        string                        `xml:"architecture"`
	RootDeviceType      string                        `xml:"rootDeviceType"`
	RootDeviceName      string                        `xml:"rootDeviceName,omitempty"`
	StateReason         *xStateReason                 `xml:"stateReason,omitempty"`
	Groups              []xGroupIdentifier            `xml:"groupSet>item"`
	BlockDeviceMappings []xInstanceBlockDeviceMapping `xml:"blockDeviceMapping>item"`
	IamInstanceProfile  *xIamInstanceProfile          `xml:"iamInstanceProfile,omitempty"`
	NetworkInterfaces   []xInstanceNetworkInterface   `xml:"networkInterfaceSet>item"`
	Tags                []xTag                        `xml:"tagSet>item"`
}

type xReservation struct {
	ReservationID string      `xml:"reservationId"`
	OwnerID       string      `xml:"ownerId"`
	Instances     []xInstance `xml:"instancesSet>item"`
}

type describeInstancesOut struct {
	ec2Head
	Reservations []xReservation `xml:"reservationSet>item"`
	NextToken    string         `xml:"nextToken,omitempty"`
}

type xNetworkInterfaceAttachment struct {
	AttachmentID        string `xml:"attachmentId"`
	InstanceID          string `xml:"instanceId"`
	InstanceOwnerID     string `xml:"instanceOwnerId"`
	DeviceIndex         int32  `xml:"deviceIndex"`
	NetworkCardIndex    int32  `xml:"networkCardIndex"`
	Status              string `xml:"status"`
	AttachTime          string `xml:"attachTime"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
}

type xNetworkInterface struct {
	NetworkInterfaceID string                       `xml:"networkInterfaceId"`
	SubnetID           string                       `xml:"subnetId"`
	VpcID              string                       `xml:"vpcId"`
	AvailabilityZone   string                       `xml:"availabilityZone"`
	Description        string                       `xml:"description"`
	OwnerID            string                       `xml:"ownerId"`
	RequesterManaged   bool                         `xml:"requesterManaged"`
	RequesterID        string                       `xml:"requesterId,omitempty"`
	Status             string                       `xml:"status"`
	MacAddress         string                       `xml:"macAddress"`
	PrivateIPAddress   string                       `xml:"privateIpAddress"`
	SourceDestCheck    bool                         `xml:"sourceDestCheck"`
	InterfaceType      string                       `xml:"interfaceType"`
	Groups             []xGroupIdentifier           `xml:"groupSet>item"`
	Attachment         *xNetworkInterfaceAttachment `xml:"attachment,omitempty"`
	Tags               []xTag                       `xml:"tagSet>item"`
}

type describeNetworkInterfacesOut struct {
	ec2Head
	NetworkInterfaces []xNetworkInterface `xml:"networkInterfaceSet>item"`
}

type xUserIDGroupPair struct {
	UserID      string `xml:"userId"`
	GroupID     string `xml:"groupId"`
	Description string `xml:"description,omitempty"`
}

type xIPRange struct {
	CidrIP      string `xml:"cidrIp"`
	Description string `xml:"description,omitempty"`
}

type xPrefixListID struct {
	PrefixListID string `xml:"prefixListId"`
	Description  string `xml:"description,omitempty"`
}

type xIPv6Range struct {
	CidrIPv6    string `xml:"cidrIpv6"`
	Description string `xml:"description,omitempty"`
}

type xIPPermission struct {
	IPProtocol string             `xml:"ipProtocol"`
	FromPort   *int32             `xml:"fromPort,omitempty"`
	ToPort     *int32             `xml:"toPort,omitempty"`
	Groups     []xUserIDGroupPair `xml:"groups>item"`
	IPRanges   []xIPRange         `xml:"ipRanges>item"`
	IPv6Ranges []xIPv6Range       `xml:"ipv6Ranges>item"`
	// PrefixLists: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_IpPermission.html (prefixListIds).
	PrefixLists []xPrefixListID `xml:"prefixListIds>item"`
}

type xSecurityGroup struct {
	OwnerID          string          `xml:"ownerId"`
	GroupID          string          `xml:"groupId"`
	GroupName        string          `xml:"groupName"`
	GroupDescription string          `xml:"groupDescription"`
	VpcID            string          `xml:"vpcId"`
	SecurityGroupArn string          `xml:"securityGroupArn"`
	Ingress          []xIPPermission `xml:"ipPermissions>item"`
	Egress           []xIPPermission `xml:"ipPermissionsEgress>item"`
	Tags             []xTag          `xml:"tagSet>item"`
}

type describeSecurityGroupsOut struct {
	ec2Head
	SecurityGroups []xSecurityGroup `xml:"securityGroupInfo>item"`
}

type createSecurityGroupOut struct {
	ec2Head
	GroupID          string `xml:"groupId"`
	SecurityGroupArn string `xml:"securityGroupArn"`
	Tags             []xTag `xml:"tagSet>item"`
}

type deleteSecurityGroupOut struct {
	ec2Head
	Return  bool   `xml:"return"`
	GroupID string `xml:"groupId"`
}

type xReferencedGroup struct {
	GroupID string `xml:"groupId"`
	UserID  string `xml:"userId"`
}

type xSecurityGroupRule struct {
	SecurityGroupRuleID  string            `xml:"securityGroupRuleId"`
	GroupID              string            `xml:"groupId"`
	GroupOwnerID         string            `xml:"groupOwnerId"`
	IsEgress             bool              `xml:"isEgress"`
	IPProtocol           string            `xml:"ipProtocol"`
	FromPort             int32             `xml:"fromPort"`
	ToPort               int32             `xml:"toPort"`
	CidrIPv4             string            `xml:"cidrIpv4,omitempty"`
	CidrIPv6             string            `xml:"cidrIpv6,omitempty"`
	ReferencedGroupInfo  *xReferencedGroup `xml:"referencedGroupInfo,omitempty"`
	PrefixListID         string            `xml:"prefixListId,omitempty"`
	Description          string            `xml:"description,omitempty"`
	SecurityGroupRuleArn string            `xml:"securityGroupRuleArn"`
}

type authorizeOut struct {
	ec2Head
	Return bool                 `xml:"return"`
	Rules  []xSecurityGroupRule `xml:"securityGroupRuleSet>item"`
}

type xRevokedRule struct {
	SecurityGroupRuleID string `xml:"securityGroupRuleId"`
	GroupID             string `xml:"groupId"`
	IsEgress            bool   `xml:"isEgress"`
	IPProtocol          string `xml:"ipProtocol"`
	FromPort            int32  `xml:"fromPort"`
	ToPort              int32  `xml:"toPort"`
	CidrIPv4            string `xml:"cidrIpv4,omitempty"`
	CidrIPv6            string `xml:"cidrIpv6,omitempty"`
	ReferencedGroupID   string `xml:"referencedGroupId,omitempty"`
	PrefixListID        string `xml:"prefixListId,omitempty"`
	Description         string `xml:"description,omitempty"`
}

type revokeOut struct {
	ec2Head
	Return  bool            `xml:"return"`
	Revoked []xRevokedRule  `xml:"revokedSecurityGroupRuleSet>item"`
	Unknown []xIPPermission `xml:"unknownIpPermissionSet>item"`
}

type xAttributeValue struct {
	Value string `xml:"value"`
}

type xAttributeBool struct {
	Value bool `xml:"value"`
}

type describeInstanceAttributeOut struct {
	ec2Head
	InstanceID                        string                        `xml:"instanceId"`
	DisableAPITermination             *xAttributeBool               `xml:"disableApiTermination,omitempty"`
	InstanceInitiatedShutdownBehavior *xAttributeValue              `xml:"instanceInitiatedShutdownBehavior,omitempty"`
	InstanceType                      *xAttributeValue              `xml:"instanceType,omitempty"`
	RootDeviceName                    *xAttributeValue              `xml:"rootDeviceName,omitempty"`
	SourceDestCheck                   *xAttributeBool               `xml:"sourceDestCheck,omitempty"`
	Groups                            []xGroupIdentifier            `xml:"groupSet>item"`
	BlockDeviceMappings               []xInstanceBlockDeviceMapping `xml:"blockDeviceMapping>item"`
}

type xAssociation struct {
	AssociationID      string              `xml:"associationId"`
	InstanceID         string              `xml:"instanceId"`
	IamInstanceProfile xIamInstanceProfile `xml:"iamInstanceProfile"`
	State              string              `xml:"state"`
	Timestamp          string              `xml:"timestamp"`
}

type associationOut struct {
	ec2Head
	Association xAssociation `xml:"iamInstanceProfileAssociation"`
}

type describeAssociationsOut struct {
	ec2Head
	Associations []xAssociation `xml:"iamInstanceProfileAssociationSet>item"`
	NextToken    string         `xml:"nextToken,omitempty"`
}

type xSnapshotInfo struct {
	SnapshotID  string `xml:"snapshotId"`
	VolumeID    string `xml:"volumeId"`
	State       string `xml:"state"`
	StartTime   string `xml:"startTime"`
	Progress    string `xml:"progress"`
	OwnerID     string `xml:"ownerId"`
	VolumeSize  int32  `xml:"volumeSize"`
	Description string `xml:"description"`
	Encrypted   bool   `xml:"encrypted"`
	Tags        []xTag `xml:"tagSet>item"`
}

type createSnapshotsOut struct {
	ec2Head
	Snapshots []xSnapshotInfo `xml:"snapshotSet>item"`
}

type xSnapshot struct {
	SnapshotID     string `xml:"snapshotId"`
	VolumeID       string `xml:"volumeId"`
	Status         string `xml:"status"`
	StartTime      string `xml:"startTime"`
	CompletionTime string `xml:"completionTime,omitempty"`
	Progress       string `xml:"progress"`
	OwnerID        string `xml:"ownerId"`
	VolumeSize     int32  `xml:"volumeSize"`
	Description    string `xml:"description"`
	Encrypted      bool   `xml:"encrypted"`
	StorageTier    string `xml:"storageTier"`
	Tags           []xTag `xml:"tagSet>item"`
}

type describeSnapshotsOut struct {
	ec2Head
	Snapshots []xSnapshot `xml:"snapshotSet>item"`
}

type xVpcCidrAssoc struct {
	AssociationID string `xml:"associationId"`
	CidrBlock     string `xml:"cidrBlock"`
	State         struct {
		State string `xml:"state"`
	} `xml:"cidrBlockState"`
}

type xVpcIPv6CidrAssoc struct {
	AssociationID string `xml:"associationId"`
	IPv6CidrBlock string `xml:"ipv6CidrBlock"`
	State         struct {
		State string `xml:"state"`
	} `xml:"ipv6CidrBlockState"`
}

type xVpc struct {
	VpcID           string              `xml:"vpcId"`
	OwnerID         string              `xml:"ownerId"`
	State           string              `xml:"state"`
	CidrBlock       string              `xml:"cidrBlock"`
	CidrAssocs      []xVpcCidrAssoc     `xml:"cidrBlockAssociationSet>item"`
	IPv6CidrAssocs  []xVpcIPv6CidrAssoc `xml:"ipv6CidrBlockAssociationSet>item"`
	DhcpOptionsID   string              `xml:"dhcpOptionsId"`
	InstanceTenancy string              `xml:"instanceTenancy"`
	IsDefault       bool                `xml:"isDefault"`
	Tags            []xTag              `xml:"tagSet>item"`
}

type describeVpcsOut struct {
	ec2Head
	Vpcs []xVpc `xml:"vpcSet>item"`
}

type xSubnet struct {
	SubnetID                string `xml:"subnetId"`
	SubnetArn               string `xml:"subnetArn"`
	State                   string `xml:"state"`
	VpcID                   string `xml:"vpcId"`
	OwnerID                 string `xml:"ownerId"`
	CidrBlock               string `xml:"cidrBlock"`
	AvailableIPAddressCount int32  `xml:"availableIpAddressCount"`
	AvailabilityZone        string `xml:"availabilityZone"`
	AvailabilityZoneID      string `xml:"availabilityZoneId"`
	DefaultForAz            bool   `xml:"defaultForAz"`
	MapPublicIPOnLaunch     bool   `xml:"mapPublicIpOnLaunch"`
	Tags                    []xTag `xml:"tagSet>item"`
}

type describeSubnetsOut struct {
	ec2Head
	Subnets []xSubnet `xml:"subnetSet>item"`
}

type xVolumeAttachment struct {
	VolumeID            string `xml:"volumeId"`
	InstanceID          string `xml:"instanceId"`
	Device              string `xml:"device"`
	Status              string `xml:"status"`
	AttachTime          string `xml:"attachTime"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
}

type xVolume struct {
	VolumeID         string              `xml:"volumeId"`
	Size             int32               `xml:"size"`
	SnapshotID       string              `xml:"snapshotId"`
	AvailabilityZone string              `xml:"availabilityZone"`
	Status           string              `xml:"status"`
	CreateTime       string              `xml:"createTime"`
	Attachments      []xVolumeAttachment `xml:"attachmentSet>item"`
	VolumeType       string              `xml:"volumeType"`
	Iops             int32               `xml:"iops"`
	Throughput       int32               `xml:"throughput"`
	Encrypted        bool                `xml:"encrypted"`
	MultiAttach      bool                `xml:"multiAttachEnabled"`
	Tags             []xTag              `xml:"tagSet>item"`
}

type describeVolumesOut struct {
	ec2Head
	Volumes []xVolume `xml:"volumeSet>item"`
}
